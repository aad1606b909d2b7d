"""End-to-end engine checks: energy against a hand calculation, tick independence,
determinism, outputs and their schema."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from traces.synthetic import JOB_COLUMNS
from twin.physics.gpu import GPU_PROFILES, mean_board_power_w
from twin.scenario import parse_scenario
from twin.sim.engine import COLUMNS, Engine
from twin.sim.results import run_to_folder

TINY = {
    "name": "tiny",
    "start": "2025-03-01T00:00:00Z",
    "duration_h": 1.0,
    "base_tick_s": 1.0,
    "seed": 7,
    "facility": {"nodes": 2, "gpus_per_node": 2, "gpu_model": "V100-SXM2-32GB", "gpu_power_cap_w": 200.0,
                 "host_idle_w": 100.0, "host_busy_w": 300.0},
    # free cooling 0 (dry-bulb 30 >= 25 and wet-bulb 20 > 12), constant weather (ranges 0)
    "cooling": {"model": "paper_eq4", "chiller_cop": 5.5, "pump_design_fraction": 0.02,
                "fan_design_fraction": 0.03, "misc_fraction": 0.03},
    "weather": {"model": "diurnal", "dry_bulb_mean_c": 30.0, "dry_bulb_range_k": 0.0,
                "wet_bulb_mean_c": 20.0, "wet_bulb_range_k": 0.0},
    "workload": {"source": "synthetic", "offered_load": 0.5, "warmup_h": 0.0},
    "grid": {"country": "DE", "carbon_source": "constant", "constant_intensity_g_per_kwh": 400.0,
             "constant_carbon_free_fraction": 0.5},
    "outputs": {"overview_png": False},
}


def scenario(**changes):
    """TINY with changes; ``section__key=value`` for table keys, None removes the key."""
    raw = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        if isinstance(value, dict):  # a whole table
            raw[key] = value
            continue
        section, _, name = key.rpartition("__")
        table = raw[section] if section else raw
        if value is None:
            table.pop(name, None)
        else:
            table[name] = value
    return parse_scenario(raw, "tiny.toml")


def one_job(submit_s=600.0, run_time_s=1800.0, nodes=1, gpu_util=0.5, host_util=0.5, workload="compute_bound"):
    return pd.DataFrame({
        "job_id": [0], "submit_s": [submit_s], "run_time_s": [run_time_s], "time_limit_s": [2 * run_time_s],
        "num_nodes": [nodes], "num_gpus": [2 * nodes], "gpu_util": [gpu_util], "host_util": [host_util],
        "workload": [workload],
    })[[*JOB_COLUMNS, "workload"]]


def run_engine(tmp_path, sc, jobs=None):
    eng = Engine(sc, tmp_path, jobs=jobs)
    eng.run()
    return eng, pq.read_table(tmp_path / "timeseries.parquet").to_pandas()


def test_energy_matches_hand_calculation(tmp_path):
    eng, ts = run_engine(tmp_path, scenario(), one_job())
    v100 = GPU_PROFILES["V100-SXM2-32GB"]
    idle = v100.idle_w  # 56.58 W
    # calibrated compute-bound power under the 200 W cap at the 1530 MHz boost clock
    p_class = mean_board_power_w(200.0, 1530.0, "compute_bound", profile=v100)
    assert 150.0 < p_class < 200.0
    target = idle + 0.5 * (p_class - idle)  # util 0.5: half the time in the class's kernels
    # GPUs: 4 idle GPUs for 3600 s + 2 GPUs at (target - idle) extra for the job's 1800 s.
    # The fitted E2 dynamics lose gap*(rise delay + tau_up_after_delay) at the start and gain
    # gap*tau_down back at the end (both transitions complete inside the hour).
    rise_s = v100.rise_delay_s + v100.tau_up_after_delay_s
    gpu_j = 4 * idle * 3600 + 2 * (target - idle) * 1800 + 2 * (target - idle) * (v100.tau_down_s - rise_s)
    # Hosts: 2 idle hosts for 3600 s + 1 host at half of (300 - 100) W extra for 1800 s.
    host_j = 2 * 100.0 * 3600 + 0.5 * 200.0 * 1800
    dt = 1.0
    assert ts["gpu_power_w"].sum() * dt == pytest.approx(gpu_j, rel=1e-9)
    assert ts["host_power_w"].sum() * dt == pytest.approx(host_j, rel=1e-12)
    # Facility (Eq. 4) with free cooling 0, design IT = 2 * (2*200 + 300) = 1400 W:
    design = 1400.0
    it_idle = 4 * idle + 200.0
    it_busy = 2 * idle + 2 * target + 100.0 + 200.0

    def fac(it):
        x = it / design
        return it + it / 5.5 + 0.02 * design * max(x, 0.2) ** 3 + 0.03 * design * max(x, 0.15) ** 3 + 0.03 * design

    # plus the GPU lag energy (negative) through the chiller (1/COP); the pump/fan slope at
    # x ~ 0.3-0.5 adds < 1 J, inside the tolerance below
    lag_j = 2 * (target - idle) * (v100.tau_down_s - rise_s)
    fac_j = fac(it_idle) * 1800 + fac(it_busy) * 1800 + lag_j * (1 + 1 / 5.5)
    # the 1 s ticks at the two lag transitions average a slightly different IT power through the
    # nonlinear pump/fan laws: < 1 J over 9e6 J, hence rel 1e-6
    assert ts["facility_power_w"].sum() * dt == pytest.approx(fac_j, rel=1e-6)
    assert ts["co2_g"].sum() == pytest.approx(fac_j / 3.6e6 * 400.0, rel=1e-6)
    assert list(ts["busy_nodes"].unique()) == [0, 1]
    assert (ts["busy_nodes"] == 1).sum() == 1800
    assert eng.counts.submitted == 1 and eng.counts.started == 1 and eng.counts.completed == 1


def test_it_energy_independent_of_tick(tmp_path):
    """The energy integral is exact between ticks: 1 s and 0.1 s ticks give the same IT energy
    even though job events fall between ticks (submit and run times are not tick multiples)."""
    jobs = pd.concat([one_job(601.37, 1234.567, 1, 0.9, 0.3), one_job(100.05, 2500.25, 2, 0.7, 0.8)])
    jobs["job_id"] = [0, 1]
    sums = {}
    for tick in (1.0, 0.1):
        folder = tmp_path / f"t{tick}"
        folder.mkdir()
        _, ts = run_engine(folder, scenario(base_tick_s=tick, duration_h=0.5), jobs)
        assert len(ts) == round(1800 / tick)
        sums[tick] = ts["it_power_w"].sum() * tick
    assert sums[0.1] == pytest.approx(sums[1.0], rel=1e-11)


def test_timeseries_schema_and_timestamps(tmp_path):
    _, ts = run_engine(tmp_path, scenario(duration_h=0.25, base_tick_s=0.5), one_job(10.0, 100.0))
    assert list(ts.columns) == ["timestamp", *COLUMNS]
    assert str(ts["timestamp"].dt.tz) == "UTC"
    assert ts["timestamp"].iloc[0] == pd.Timestamp("2025-03-01T00:00:00Z")
    assert (ts["timestamp"].diff().dropna() == pd.Timedelta(milliseconds=500)).all()
    assert len(ts) == 1800
    assert ts["busy_nodes"].dtype == np.int64
    np.testing.assert_allclose(ts["pue"], ts["facility_power_w"] / ts["it_power_w"], rtol=1e-12)
    parts = ts[["it_power_w", "chiller_power_w", "pump_power_w", "fan_power_w", "misc_power_w"]].sum(axis=1)
    np.testing.assert_allclose(ts["facility_power_w"], parts, rtol=1e-12)


def test_same_seed_same_parquet_different_seed_differs(tmp_path):
    sc = scenario(duration_h=2.0, grid__carbon_source="synthetic", grid__constant_intensity_g_per_kwh=None,
                  grid__constant_carbon_free_fraction=None,
                  facility__nodes=20, workload__warmup_h=6.0)
    paths = []
    for i, seed_sc in enumerate((sc, sc, scenario(duration_h=2.0, seed=8, facility__nodes=20, workload__warmup_h=6.0,
                                                  grid__carbon_source="synthetic",
                                                  grid__constant_intensity_g_per_kwh=None, grid__constant_carbon_free_fraction=None))):
        folder = tmp_path / str(i)
        folder.mkdir()
        Engine(seed_sc, folder).run()
        paths.append(folder / "timeseries.parquet")
    a, b, c = (pq.read_table(p).to_pandas() for p in paths)
    assert a.equals(b)  # pandas equality: NaN == NaN (the Eq. 4 plant has no coolant temperatures)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert not a.equals(c)
    assert a["it_power_w"].std() > 0  # jobs came and went


def test_results_folder_contents_and_summary(tmp_path):
    sc = scenario(duration_h=1.0, outputs__overview_png=True, outputs__per_host_series=True,
                  facility__nodes=3)
    folder = run_to_folder(sc, tmp_path / "out")
    assert folder == tmp_path / "out" / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == ["hosts.parquet", "overview.png", "summary.json",
                                                        "timeseries.parquet"]
    assert (folder / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s = json.loads((folder / "summary.json").read_text())
    for key in ("it_energy_kwh", "facility_energy_kwh", "pue_mean", "pue_max", "peak_facility_power_kw", "co2_kg",
                "wall_s", "real_time_factor", "peak_rss_mb", "scenario_sha256"):
        assert s[key] is not None, key
    ts = pq.read_table(folder / "timeseries.parquet").to_pandas()
    assert s["it_energy_kwh"] == pytest.approx(ts["it_power_w"].sum() / 3.6e6, rel=1e-12)
    assert s["pue_mean"] == pytest.approx(s["facility_energy_kwh"] / s["it_energy_kwh"], rel=1e-12)
    assert s["pue_max"] == pytest.approx(ts["pue"].max(), rel=1e-12)
    assert s["peak_facility_power_kw"] == pytest.approx(ts["facility_power_w"].max() / 1e3, rel=1e-12)
    assert s["co2_kg"] == pytest.approx(s["facility_energy_kwh"] * 0.4, rel=1e-9)  # constant 400 g/kWh
    assert s["real_time_factor"] == pytest.approx(3600.0 / s["wall_s"], rel=1e-9)
    hosts = pq.read_table(folder / "hosts.parquet").to_pandas()
    assert len(hosts) == 3600 * 3
    assert sorted(hosts["host"].unique()) == [0, 1, 2]
    # per-host series (float32) add up to the IT energy
    assert hosts["power_w"].astype(float).sum() / 3.6e6 == pytest.approx(s["it_energy_kwh"], rel=1e-6)
    assert not list((tmp_path / "out").glob(".*"))  # no partial or old folder left behind


def test_existing_results_need_force(tmp_path):
    from twin.sim.results import ResultsExistError

    sc = scenario(duration_h=0.1)
    folder = run_to_folder(sc, tmp_path)
    (folder / "marker").write_text("mine")
    with pytest.raises(ResultsExistError, match="already exists; pass --force"):
        run_to_folder(sc, tmp_path)
    assert (folder / "marker").read_text() == "mine"
    run_to_folder(sc, tmp_path, force=True)
    assert not (folder / "marker").exists()
    assert (folder / "summary.json").exists()


def test_failed_run_leaves_no_folder(tmp_path, monkeypatch):
    from twin.sim import engine as engine_mod

    def boom(self, t_s):
        if t_s > 100:
            raise RuntimeError("simulated failure")
        return 300.0, 0.5

    monkeypatch.setattr(engine_mod.CarbonSignal, "both_at", boom)
    with pytest.raises(RuntimeError, match="simulated failure"):
        run_to_folder(scenario(duration_h=0.1), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_injected_job_table_is_checked(tmp_path):
    with pytest.raises(ValueError, match=r"row 0: num_nodes = 5, expected in 1..2"):
        Engine(scenario(), tmp_path, jobs=one_job(nodes=5))
    with pytest.raises(ValueError, match="lacks column"):
        Engine(scenario(), tmp_path, jobs=one_job().drop(columns=["gpu_util"]))


@pytest.mark.parametrize("model", ["paper_eq4", "air_chiller", "dlc_warm_water"])
def test_every_cooling_model_balances_in_a_run(tmp_path, model):
    sc = scenario(duration_h=1.0, cooling={"model": model}, facility__nodes=8, workload__warmup_h=2.0,
                  weather={"model": "climate", "site": "DE"})
    folder = run_to_folder(sc, tmp_path)
    s = json.loads((folder / "summary.json").read_text())
    assert s["cooling_model"] == model
    assert s["energy_balance_rel_error"] <= 1e-9  # each term from its own model; float round-off only
    e = s["energy_balance_kwh"]
    assert sum(e["in"].values()) == pytest.approx(s["facility_energy_kwh"], rel=1e-9)


def test_a_leaking_component_fails_the_run(tmp_path, monkeypatch):
    """0.2 % of the heat the plant rejects goes missing: the balance check must stop the run."""
    from dataclasses import replace

    from twin.facility.balance import EnergyBalanceError
    from twin.facility.cooling_plant import PaperEq4Plant

    honest = PaperEq4Plant.step

    def leaky(self, *args):
        flows = honest(self, *args)
        return replace(flows, heat_rejected_w=flows.heat_rejected_w * 0.998)

    monkeypatch.setattr(PaperEq4Plant, "step", leaky)
    with pytest.raises(EnergyBalanceError, match=r"energy balance off by 0\.1\d\d%"):
        run_to_folder(scenario(duration_h=0.5), tmp_path)
    assert list(tmp_path.iterdir()) == []
