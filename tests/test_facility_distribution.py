"""Electrical distribution losses in facility runs (no [training]): a hand-checked tick,
PUE with and without losses, the energy balance, refusal of a topology too small for the
design IT power, and runs without [distribution] untouched."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pandas as pd
import pytest

from twin.facility.cooling_plant import make_cooling_model
from twin.facility.distribution import (
    Distribution,
    EvenSpreadLossCurve,
    Pdu,
    Rack,
    Transformer,
    Ups,
    Utility,
)
from twin.facility.gpu_fleet import GpuFleet
from twin.facility.grid import CarbonSignal
from twin.facility.site import Site
from twin.facility.weather import DiurnalWeather
from twin.physics.electrical import psu_input_power_w, transformer_loss_w, ups_loss_w
from twin.physics.gpu import GPU_PROFILES
from twin.scenario import ScenarioError, parse_scenario
from twin.sim.results import run_to_folder

EQ4 = {"chiller_cop": 5.5, "pump_design_fraction": 0.02, "fan_design_fraction": 0.03, "misc_fraction": 0.03}

# ------------------------------------------------------------------ hand-checked tick


def one_chain() -> Distribution:
    """meter -> T0 (4 kVA, P0 20 W, Pk 100 W) -> UPS0 (3333.3 W) -> lossless PDU -> one rack (PSU 3200 W)."""
    return Distribution([
        Utility("meter", 1e4),
        Transformer("T0", ("meter",), rated_va=4000.0, no_load_loss_w=20.0, load_loss_w=100.0),
        Ups("UPS0", ("T0",), capacity_w=10000.0 / 3.0),
        Pdu("PDU0", ("UPS0",), capacity_w=5000.0, full_load_loss_fraction=0.0),
        Rack("R0", ("PDU0",), capacity_w=3200.0),
    ])


def constant_site(distribution=None) -> Site:
    # 2 cohorts x 2 V100 at util 1 capped at 250 W -> 1000 W of GPUs; 2 hosts busy at 300 W: IT 1600 W
    fleet = GpuFleet(GPU_PROFILES["V100-SXM2-32GB"], gpu_count=[2, 2], host_count=[1, 1], cap_w=250.0,
                     host_idle_w=100.0, host_busy_w=300.0)
    fleet.set_load(0.0, [0, 1], gpu_util=1.0, host_util=1.0)
    start = datetime(2024, 7, 1, tzinfo=UTC)
    weather = DiurnalWeather(start, dry_bulb_mean_c=30.0, dry_bulb_range_k=0.0, wet_bulb_mean_c=20.0,
                             wet_bulb_range_k=0.0, peak_hour_utc=15.0)
    site = Site(fleet, make_cooling_model("paper_eq4", EQ4, 3200.0), weather, CarbonSignal(start, start, [250.0] * 24),
                distribution=distribution)
    site.open_at(60.0)  # board power settled at the cap
    return site


def test_tick_loss_equals_the_physics_functions_at_a_known_load():
    it = 1600.0
    # By hand: PSU at 50 % of 3200 W -> Titanium 96 %: input 1600 / 0.96 = 1666.667 W (loss 66.667 W);
    # PDU lossless; UPS at 1666.667 / 3333.333 = 50 % -> 95 %: input 1754.386 W (loss 87.719 W);
    # UPS input PF 0.99 (>= 25 % load): S = 1754.386 / 0.99 = 1772.107 VA at the transformer;
    # transformer 20 + (1772.107 / 4000)^2 * 100 = 39.627 W. Total 194.013 W.
    psu_in = 1600.0 / 0.96
    ups_in = psu_in / 0.95
    hand = (psu_in - it) + (ups_in - psu_in) + 20.0 + (ups_in / 0.99 / 4000.0) ** 2 * 100.0
    assert hand == pytest.approx(194.013, abs=1e-3)
    physics = ((psu_input_power_w(it, 3200.0) - it) + ups_loss_w(psu_in, 10000.0 / 3.0)
               + transformer_loss_w(ups_in / 0.99, 4000.0, 20.0, 100.0))
    assert float(physics) == pytest.approx(hand, rel=1e-12)

    curve = EvenSpreadLossCurve(one_chain())
    assert curve.max_it_w == 3200.0  # the rack's PSU rating
    site, bare = constant_site(curve), constant_site()
    r = dict(zip(Site.COLUMNS, site.close_tick(660.0)))
    r0 = dict(zip(Site.COLUMNS, bare.close_tick(660.0)))
    assert r["it_power_w"] == pytest.approx(it, rel=1e-9)
    # 1600 W is a table point (step 3200 / 4096 W), so interpolation adds nothing but rounding
    assert r["distribution_loss_w"] == pytest.approx(hand, rel=1e-9)
    assert r["facility_power_w"] == pytest.approx(r0["facility_power_w"] + hand, rel=1e-12)
    assert r["grid_power_w"] == r["facility_power_w"]  # no battery
    assert r["pue"] == pytest.approx(r0["pue"] + hand / it, rel=1e-9)
    assert r["co2_g"] == pytest.approx(r["facility_power_w"] * 600.0 / 3.6e6 * 250.0, rel=1e-12)
    # the losses are not cooled by the modelled plant: cooling is unchanged
    for c in ("chiller_power_w", "pump_power_w", "fan_power_w", "misc_power_w", "heat_rejected_w"):
        assert r[c] == r0[c]
    assert math.isnan(r0["distribution_loss_w"])
    assert site.ledger.inflows["distribution_electricity"] == pytest.approx(hand * 600.0, rel=1e-9)
    assert site.ledger.outflows["distribution_losses"] == site.ledger.inflows["distribution_electricity"]
    assert site.ledger.rel_error() < 1e-12
    # power quality at the meter: the UPS input stage (PF 0.99, THD 3 %) with the transformer's
    # loss added as real power: PF = P / sqrt(P^2 + (Q^2 + H^2)), Q^2 + H^2 = S_ups^2 - P_ups^2
    _, psu, pf, thd = curve.at(it)
    assert psu == pytest.approx(psu_in - it, rel=1e-9)
    p_meter = ups_in + (hand - (ups_in - it))
    assert pf == pytest.approx(p_meter / math.sqrt(p_meter**2 + (ups_in / 0.99) ** 2 - ups_in**2), rel=1e-9)
    assert 0.029 < thd < 0.03  # H fixed by the UPS input, |P + jQ| raised by the transformer loss


def test_loss_table_interpolates_compute_and_refuses_outside_it():
    d = one_chain()
    curve = EvenSpreadLossCurve(d)
    for it in (0.0, 123.4, 999.9, 2500.0, 3200.0):
        fl = d.compute({"R0": it})
        # off-grid points: linear interpolation on a 0.78 W step; the curve's kinks and
        # curvature keep the error far below 1e-5 of the loss
        assert curve.at(it)[0] == pytest.approx(float(fl.meter_w - fl.it_w), rel=1e-5)
    with pytest.raises(ValueError, match="outside the distribution loss table"):
        curve.at(3300.0)
    with pytest.raises(ValueError, match=">= 0 W"):
        curve.at(-1.0)


# ------------------------------------------------------------------ engine runs

TINY = {
    "name": "tiny_dist",
    "start": "2025-03-01T00:00:00Z",
    "duration_h": 1.0,
    "base_tick_s": 1.0,
    "seed": 7,
    "facility": {"nodes": 4, "gpus_per_node": 2, "gpu_model": "V100-SXM2-32GB", "gpu_power_cap_w": 200.0,
                 "host_idle_w": 100.0, "host_busy_w": 300.0},  # design IT 4 x 700 W = 2.8 kW
    "cooling": {"model": "paper_eq4", "chiller_cop": 5.5, "pump_design_fraction": 0.02,
                "fan_design_fraction": 0.03, "misc_fraction": 0.03},
    "weather": {"model": "diurnal", "dry_bulb_mean_c": 30.0, "dry_bulb_range_k": 0.0,
                "wet_bulb_mean_c": 20.0, "wet_bulb_range_k": 0.0},
    "workload": {"source": "synthetic", "offered_load": 0.7, "warmup_h": 1.0},
    "grid": {"country": "DE", "carbon_source": "constant", "constant_intensity_g_per_kwh": 400.0,
             "constant_carbon_free_fraction": 0.5},
    "outputs": {"overview_png": False},
}
# 4 circuits of 1 kW (700 W design each), 2 per PDU, N+1 transformers (5 kVA) and UPS (2 kW)
DIST = {"circuits": 4, "circuit_capacity_mw": 0.001, "circuits_per_pdu": 2, "transformer_mva": 0.005,
        "ups_mw": 0.002}


def raw(dist=None, **top):
    r = json.loads(json.dumps(TINY))
    r.update(top)
    if dist is not None:
        r["distribution"] = dist
    return r


def run(tmp_path, r):
    folder = run_to_folder(parse_scenario(r, "tiny.toml"), tmp_path)
    return json.loads((folder / "summary.json").read_text()), pd.read_parquet(folder / "timeseries.parquet")


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    return run(tmp / "with", raw(DIST)), run(tmp / "without", raw())


def test_pue_rises_by_exactly_loss_over_it_energy(both):
    (s, ts), (s0, _) = both
    e = s["electrical"]
    loss = e["distribution_loss_kwh"]
    assert s["it_energy_kwh"] == s0["it_energy_kwh"]
    assert loss == pytest.approx(ts["distribution_loss_w"].sum() * 1.0 / 3.6e6, rel=1e-9)  # 1 s ticks
    assert loss > 0.0
    assert s["pue_mean"] - s0["pue_mean"] == pytest.approx(loss / s["it_energy_kwh"], rel=1e-9)
    assert s["facility_energy_kwh"] == pytest.approx(s0["facility_energy_kwh"] + loss, rel=1e-12)
    assert e["pue_without_distribution_loss"] == pytest.approx(s0["pue_mean"], rel=1e-12)
    assert e["loss_share_of_facility_energy"] == pytest.approx(loss / s["facility_energy_kwh"], rel=1e-12)
    assert e["psu_loss_kwh"] + e["upstream_loss_kwh"] == pytest.approx(loss, rel=1e-12)
    assert 0.9 < e["power_factor_min"] <= e["power_factor_mean"] <= 1.0
    assert 0.0 < e["thd_mean"] < 0.1
    # CO2 at a constant 400 g/kWh follows the facility energy
    assert s["co2_kg"] == pytest.approx(s0["co2_kg"] + loss * 0.4, rel=1e-9)


def test_energy_balance_still_closes(both):
    (s, _), _ = both
    assert s["energy_balance_rel_error"] < 1e-9
    b = s["energy_balance_kwh"]
    assert b["in"]["distribution_electricity"] == pytest.approx(s["electrical"]["distribution_loss_kwh"], rel=1e-9)
    assert b["out"]["distribution_losses"] == b["in"]["distribution_electricity"]


def test_runs_without_distribution_are_unchanged(both):
    (s, ts), (s0, ts0) = both
    assert s0["electrical"] is None
    assert ts0["distribution_loss_w"].isna().all()
    assert "distribution_electricity" not in s0["energy_balance_kwh"]["in"]
    # everything upstream of the meter is the same run; only the meter-side figures move
    moved = {"facility_energy_kwh", "pue_mean", "pue_max", "peak_facility_power_kw", "grid_energy_kwh", "co2_kg",
             "co2_facility_kg", "co2_facility_g_per_node_h", "energy_balance_rel_error", "energy_balance_kwh",
             "electrical", "scenario", "scenario_file", "scenario_sha256", "wall_s", "real_time_factor",
             "peak_rss_mb", "cfe"}
    for k in s0:
        if k not in moved:
            assert s[k] == s0[k], k
    for c in ts0.columns:
        if c not in ("facility_power_w", "grid_power_w", "pue", "co2_g", "distribution_loss_w"):
            pd.testing.assert_series_equal(ts[c], ts0[c])


def test_a_second_run_without_distribution_is_identical(both, tmp_path):
    _, (s0, ts0) = both
    s1, ts1 = run(tmp_path, raw())
    for k in s0:
        if k not in ("wall_s", "real_time_factor", "peak_rss_mb"):
            assert s1[k] == s0[k], k
    pd.testing.assert_frame_equal(ts1, ts0)


# ------------------------------------------------------------------ scenario checks


def test_topology_too_small_for_the_design_it_power_is_refused():
    small = dict(DIST, circuit_capacity_mw=0.0007)  # 700 W of IT needs ~760 W at the PSU input
    with pytest.raises(ScenarioError, match=r"distribution\.circuit_capacity_mw = 0\.0007: the topology cannot "
                                            r"carry the facility's design IT power \(0\.0028 MW"):
        parse_scenario(raw(small), "tiny.toml")
    tight_meter = dict(DIST, utility_capacity_mw=0.0025)
    with pytest.raises(ScenarioError, match=r"distribution\.utility_capacity_mw = 0\.0025: .*overloaded: meter"):
        parse_scenario(raw(tight_meter), "tiny.toml")
    # N sized for 4 x 1 kW x 0.25 = 1 kW: 1 + 1 UPS of 1 kW for ~3 kW at the UPS outputs
    thin = dict(DIST, design_margin=0.25, ups_mw=0.001)
    with pytest.raises(ScenarioError, match=r"distribution\.design_margin = 0\.25: .*overloaded: .*UPS"):
        parse_scenario(raw(thin), "tiny.toml")


def test_distribution_without_training_is_accepted_but_other_power_sections_are_not():
    sc = parse_scenario(raw(DIST), "tiny.toml")
    assert sc.training is None and sc.distribution is not None and sc.distribution.circuits == 4
    r = raw(DIST)
    r["faults"] = [{"element": "UPS0", "t_s": 10.0}]
    with pytest.raises(ScenarioError, match=r"\[faults\]: only used by a power study"):
        parse_scenario(r, "tiny.toml")
    with pytest.raises(ScenarioError, match=r"distribution\.circuits"):
        parse_scenario(raw({"circuit_capacity_mw": 0.001}), "tiny.toml")
