"""Power study (issue 8): smoothing on/off, shedding, energy balance, preparation, admission vs circuits."""

from __future__ import annotations

import json
import math
import tomllib

import numpy as np
import pytest

from traces.training import TrainingPowerParams, TrainingPowerTrace
from twin.control.admission import WorkloadAnnouncement, decide_admission
from twin.facility.distribution import DistributionFlows, standard_topology
from twin.scenario import ScenarioError, load_scenario, parse_scenario
from twin.sim.power_study import (
    PowerStudyBalanceError,
    StudyWorkload,
    facility_state_for_admission,
    place_workloads,
    plan_shedding,
    run_power_study,
    tick_energy_j,
)
from twin.sim.results import run_to_folder

MW = 1e6

BASE = """
name = "ps"
start = 2025-07-15T12:00:00Z
duration_h = {duration_h}
base_tick_s = 0.1
[facility]
nodes = 20000
gpus_per_node = 8
gpu_model = "H100-SXM"
host_busy_w = 2800.0
host_idle_w = 1000.0
[cooling]
model = "air_chiller"
[weather]
model = "diurnal"
dry_bulb_mean_c = 27.0
dry_bulb_range_k = 10.0
wet_bulb_mean_c = 19.0
wet_bulb_range_k = 4.0
[workload]
source = "synthetic"
offered_load = 0.5
[grid]
country = "DE"
carbon_source = "synthetic"
[battery]
model = "lfp"
capacity_kwh = 40000.0
max_charge_kw = 160000.0
max_discharge_kw = 160000.0
[training]
critical_it_mw = 5.0
base_it_mw = 5.0
[distribution]
circuits = 8
circuit_capacity_mw = 25.0
circuits_per_pdu = 2
transformer_mva = 25.0
ups_mw = 25.0
"""

JOB = """
[[training.jobs]]
name = "{name}"
peak_mw = {peak_mw}
start_s = {start_s}
priority = "{priority}"
announce_lead_s = {announce_lead_s}
"""


def scenario(duration_s=120.0, jobs=(("job", 120.0, 10.0, "low", 0.0),), extra=""):
    text = BASE.format(duration_h=duration_s / 3600.0)
    for name, peak, start, prio, lead in jobs:
        text += JOB.format(name=name, peak_mw=peak, start_s=start, priority=prio, announce_lead_s=lead)
    return parse_scenario(tomllib.loads(text + extra), "<test>")


@pytest.fixture(scope="module")
def small():
    # 120 MW job (swings 60 MW at 1.5 s) from t = 10 s on 10 MW of other IT, 120 s at 0.1 s
    return run_power_study(scenario())


# ------------------------------------------------------------------ traces


def test_tick_energy_is_the_exact_integral():
    trace = TrainingPowerTrace(TrainingPowerParams(100 * MW, start_s=0.35, data_load_interval_s=3.0,
                                                   data_load_duration_s=0.7))
    e = tick_energy_j(trace, 0.0, 0.1, 100)
    ref = np.array([trace.energy_j(k * 0.1, (k + 1) * 0.1) for k in range(100)])
    np.testing.assert_allclose(e, ref, rtol=1e-12, atol=1e-3)
    assert e[:3].sum() == 0.0 and e.sum() == pytest.approx(trace.energy_j(0.0, 10.0), rel=1e-12)


# ------------------------------------------------------------------ smoothing on / off (the "Done when")


def test_smoothing_on_holds_the_ramp_soc_window_and_has_no_events(small):
    on = small["smoothing_on"]
    # 100 ms averages of the meter move at most 10 MW/s (float rounding allowed)
    assert on["max_meter_ramp_mw_per_s"] <= on["ramp_limit_mw_per_s"] * (1 + 1e-9)
    assert on["soc_inside_window"] and 0.1 <= on["soc_min"] <= on["soc_max"] <= 0.9
    assert on["destabilising_events_dcpi"] == 0 and on["destabilising_events_configured"] == 0
    assert on["battery_throughput_mwh"] > 0 and on["floor_energy_mwh"] == 0 and on["throttled_energy_mwh"] == 0


def test_smoothing_off_shows_the_swings(small):
    off = small["smoothing_off"]
    # the 120 MW job swings 60 MW of IT (> 60 MW at the meter) twice per 1.5 s iteration from t = 10 s:
    # ~110 s / 1.5 s = 73 iterations -> ~146 swings > 50 MW in < 1 s, plus the start step
    assert 140 <= off["destabilising_events_dcpi"] <= 150
    assert off["max_meter_ramp_mw_per_s"] > 600  # the start: > 60 MW within one 100 ms window
    assert off["battery_throughput_mwh"] == 0.0


def test_variants_share_the_demand_and_balance(small):
    on, off = small["smoothing_on"], small["smoothing_off"]
    assert on["it_energy_mwh"] == pytest.approx(off["it_energy_mwh"], rel=1e-12)
    assert small["energy_balance_rel_error"] <= 1e-12
    # the battery's round trip costs energy: smoothing raises grid energy by its losses + stored change
    dgrid = on["grid_energy_mwh"] - off["grid_energy_mwh"]
    dbat = on["battery_losses_mwh"] - off["battery_losses_mwh"]
    stored = on["energy_balance_mwh"]["out"]["battery stored change"] - off["energy_balance_mwh"]["out"][
        "battery stored change"]
    assert dgrid == pytest.approx(dbat + stored, rel=1e-6)
    assert 0.9 < on["power_factor_mean"] <= 1.0 and 0 < on["thd_mean"] < 0.1
    assert on["pue"] > 1.0


def test_injected_leak_fails_the_balance(monkeypatch, tmp_path):
    # a distribution model that under-reports its losses by 0.1 % leaks ~1e-4 of the input
    real = DistributionFlows.total_loss_w
    monkeypatch.setattr(DistributionFlows, "total_loss_w", property(lambda self: 0.999 * real.fget(self)))
    sc = scenario(duration_s=20.0)
    with pytest.raises(PowerStudyBalanceError, match="energy balance off"):
        run_power_study(sc)
    with pytest.raises(PowerStudyBalanceError):
        run_to_folder(sc, tmp_path)
    assert not (tmp_path / "ps").exists() and not list(tmp_path.glob(".ps.partial*"))


# ------------------------------------------------------------------ shedding


def _nplus1_overloaded():
    # 4 circuits x 10 MW; design 4 x 10 x 0.75 = 30 MW -> N = 3 UPS of 10 MW, +1 = 4.
    # 30 MW of IT draws ~32 MW at the UPS outputs: fine on 4 units (8 MW each), 10.9 MW each on 3.
    return lambda: standard_topology(4, 10 * MW, racks_per_pdu=2, transformer_rated_va=20e6, ups_capacity_w=10 * MW,
                                     design_margin=0.75)


class F:
    def __init__(self, element, t_s, action="fail", reason=""):
        self.element, self.t_s, self.action, self.reason = element, t_s, action, reason


def test_ups_failure_sheds_lowest_priority_and_protects_critical():
    make = _nplus1_overloaded()
    racks = make().racks
    wl = [StudyWorkload("crit", "critical", "critical", 5 * MW, racks=racks),
          StudyWorkload("svc", "high", "base", 5 * MW, racks=racks),
          StudyWorkload("train", "low", "training", 20 * MW, racks=racks[:2] + racks[2:])]
    plan = plan_shedding(make, wl, [F("UPS1", 5.0), F("UPS1", 8.0, "restore")], [], 0.1, 100)
    shed = [d for d in plan.log if d["action"] == "shed"]
    assert [d["workload_id"] for d in shed] == ["train"]
    assert shed[0]["t_s"] == 5.0 and "UPS1 failure" in shed[0]["reason"] and "lowest priority first" in shed[0]["reason"]
    assert shed[0]["scope"].startswith("UPS")
    resumed = [d for d in plan.log if d["action"] == "resume"]
    assert [(d["workload_id"], d["t_s"]) for d in resumed] == [("train", 8.0)]
    assert plan.on["crit"].all() and plan.on["svc"].all()
    assert not plan.on["train"][50:80].any() and plan.on["train"][:50].all() and plan.on["train"][80:].all()
    assert [s[2] for s in plan.segments] == [frozenset(), frozenset({"UPS1"}), frozenset()]


def test_critical_load_is_never_shed_even_when_it_alone_overloads():
    make = _nplus1_overloaded()
    racks = make().racks
    wl = [StudyWorkload("crit", "critical", "critical", 24 * MW, racks=racks),
          StudyWorkload("train", "normal", "training", 4 * MW, racks=racks)]
    plan = plan_shedding(make, wl, [F("UPS0", 1.0), F("UPS1", 1.0)], [], 0.1, 30)
    acts = [(d["workload_id"], d["action"]) for d in plan.log]
    assert ("train", "shed") in acts and ("", "insufficient") in acts
    assert "critical load is protected" in next(d["reason"] for d in plan.log if d["action"] == "insufficient")
    assert plan.on["crit"].all()


def test_grid_emergency_sheds_and_resumes_through_the_runner():
    sc = scenario(duration_s=60.0, jobs=(("big", 60.0, 0.0, "normal", 0.0), ("small", 40.0, 0.0, "low", 0.0)),
                  extra="[[grid_events]]\nt_s = 20.0\nreduction_mw = 30.0\nduration_s = 20.0\n"
                        "[[faults]]\nelement = \"UPS1\"\nt_s = 10.0\n")
    s = run_power_study(sc)
    shed = [d for d in s["shedding"] if d["action"] == "shed"]
    # 30 MW asked: the low-priority 40 MW job goes, nothing else (N+1 absorbs the UPS failure)
    assert [(d["workload_id"], d["t_s"], d["scope"]) for d in shed] == [("small", 20.0, "meter")]
    assert "grid emergency signal" in shed[0]["reason"]
    assert [(d["workload_id"], d["t_s"]) for d in s["shedding"] if d["action"] == "resume"] == [("small", 40.0)]
    assert s["switch_events"] == [{"t_s": 10.0, "element": "UPS1", "action": "fail", "reason": "UPS1 failure"}]
    off = s["grid_events"]["smoothing_off"][0]
    assert off["met"] and off["achieved_mw"] >= 30.0
    assert s["unserved_it_energy_mwh"] == 0.0


def test_placement_respects_circuit_capacity():
    d = standard_topology(4, 10 * MW, racks_per_pdu=2, transformer_rated_va=50e6, ups_capacity_w=50 * MW)
    fixed = [StudyWorkload("crit", "critical", "critical", 4 * MW, racks=d.racks)]
    job = StudyWorkload("j", "normal", "training", 15 * MW)
    racks = place_workloads(d, fixed, [job])["j"]
    assert len(racks) == 2  # 15 MW does not fit one 10 MW circuit carrying 1 MW; fits two
    with pytest.raises(ValueError, match="cannot be placed"):
        place_workloads(d, fixed, [StudyWorkload("huge", "normal", "training", 40 * MW)])


# ------------------------------------------------------------------ admission vs circuits


def test_admission_refuses_a_workload_that_would_overload_a_circuit():
    d = standard_topology(2, 10 * MW, racks_per_pdu=1, transformer_rated_va=50e6, ups_capacity_w=50 * MW)
    loads = {"R0": 6 * MW, "R1": 2 * MW}
    st = facility_state_for_admission(d, loads, start_s=0.0, step_s=3600.0, headroom_w=np.full(4, 100 * MW))
    head = dict(st.circuit_headroom_w)
    # R1 has more room; its IT headroom is below the 8 MW of AC capacity left (PSU losses)
    assert head["R1"] > head["R0"] and 7.0 * MW < head["R1"] < 8.0 * MW

    def announce(peak_w):
        return WorkloadAnnouncement("w", "ai_training", peak_w, 0.0, 3600.0, 0.0, 3600.0, priority="normal")

    ok = decide_admission(announce(head["R1"] - 1e3), st)
    assert ok.status == "approved" and ok.circuit_id == "R1"
    no = decide_admission(announce(head["R1"] + 1e3), st)
    assert no.status == "rejected" and "circuit 'R1'" in " ".join(no.reasons)
    # what admission approved fits; what it refused would have overloaded the circuit
    assert not d.compute({**loads, "R1": loads["R1"] + head["R1"] - 1e3}).overloaded
    assert "R1" in d.compute({**loads, "R1": loads["R1"] + head["R1"] + 1e3}).overloaded


# ------------------------------------------------------------------ preparation


def test_preparation_prestages_cooling_and_lowers_the_overshoot():
    # 120 MW job announced 600 s ahead, starting at 400 s on 10 MW; chillers come 180 s after a request
    s = run_power_study(scenario(duration_s=900.0, jobs=(("job", 120.0, 400.0, "normal", 600.0),)))
    pr = s["preparation"]
    unprep = pr["unprepared"]["supply_overshoot"]["per_job_k"]["job"]
    prep = pr["prepared"]["supply_overshoot"]["per_job_k"]["job"]
    assert unprep > 0.2 and prep < 0.05 and prep < unprep
    plan = pr["plans"][0]
    assert plan["feasible"] and plan["steps"][0] == {
        "t_s": 100.0, "system": "cooling", "action": "prestage_w", "value": pytest.approx(plan["steps"][0]["value"]),
        "reason": plan["steps"][0]["reason"]}
    # the start triangle P^2 / (2 R) at the meter: P = 120 MW x (meter/IT ~ 1.1-1.2), R = 10 MW/s
    assert 120**2 / 20 / 3600 * 1.1**2 < plan["start_energy_mwh"] < 120**2 / 20 / 3600 * 1.25**2
    assert pr["prepared"]["max_meter_ramp_mw_per_s"] <= 10.0 * (1 + 1e-9)


# ------------------------------------------------------------------ scenario parsing


@pytest.mark.parametrize("extra, message", [
    ("[[faults]]\nelement = \"UPS9\"\nt_s = 1.0\n", "faults[0].element = 'UPS9': no such distribution element"),
    ("[[faults]]\nelement = \"UPS1\"\nt_s = 1.0\naction = \"restore\"\n", "has not failed before"),
    ("[faults]\nelement = \"UPS1\"\nt_s = 1.0\n", "expected an array of tables, written [[faults]]"),
    ("[[grid_events]]\nt_s = 1.0\nreduction_mw = -3.0\nduration_s = 5.0\n", "grid_events[0].reduction_mw = -3.0"),
])
def test_power_study_sections_are_validated(extra, message):
    with pytest.raises(ScenarioError) as exc:
        scenario(extra=extra)
    assert message in str(exc.value)


def test_power_sections_but_distribution_need_training_and_a_fine_tick():
    text = BASE.format(duration_h=0.01).replace("[training]\ncritical_it_mw = 5.0\nbase_it_mw = 5.0\n", "")
    assert parse_scenario(tomllib.loads(text)).training is None  # [distribution] alone: a facility run
    with pytest.raises(ScenarioError, match=r"\[faults\]: only used by a power study"):
        parse_scenario(tomllib.loads(text + '\n[[faults]]\nelement = "UPS0"\nt_s = 1.0\n'))
    text = BASE.format(duration_h=0.01).replace("base_tick_s = 0.1", "base_tick_s = 1.0")
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(tomllib.loads(text + JOB.format(name="a", peak_mw=1, start_s=0, priority="low",
                                                        announce_lead_s=0)))
    assert "divides 0.1 s" in str(exc.value)
    with pytest.raises(ScenarioError, match=r"\[\[training.jobs\]\]: missing"):
        parse_scenario(tomllib.loads(BASE.format(duration_h=0.01)))


def test_engine_scenarios_have_no_power_study(scenarios_dir):
    sc = load_scenario(scenarios_dir / "quickstart.toml")
    assert sc.training is None and sc.faults == () and sc.grid_events == ()


# ------------------------------------------------------------------ the shipped scenario


def test_shipped_smoothing_scenario(scenarios_dir, tmp_path, capsys):
    from twin.cli import main

    assert main(["run", str(scenarios_dir / "training_smooth.toml"), "--out", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "smoothing on : max ramp 10.0 MW/s, destabilising events 0 (DCPI)" in printed
    s = json.loads((tmp_path / "training_smooth" / "summary.json").read_text())
    on, off = s["smoothing_on"], s["smoothing_off"]
    assert on["max_meter_ramp_mw_per_s"] <= on["ramp_limit_mw_per_s"] * (1 + 1e-9)
    assert on["soc_inside_window"] and on["destabilising_events_dcpi"] == 0 == on["destabilising_events_configured"]
    assert off["destabilising_events_dcpi"] > 1000 and off["max_meter_ramp_mw_per_s"] > 1000
    pr = s["preparation"]
    assert (pr["prepared"]["supply_overshoot"]["per_job_k"]["train-300MW"]
            < pr["unprepared"]["supply_overshoot"]["per_job_k"]["train-300MW"])
    assert [d["action"] for d in s["shedding"]] == ["shed", "resume"]
    assert s["energy_balance_rel_error"] < 1e-6
    assert math.isfinite(on["ageing_cost_usd_blast"]) and on["battery_throughput_mwh"] > 0
    assert (tmp_path / "training_smooth" / "timeseries.parquet").is_file()
