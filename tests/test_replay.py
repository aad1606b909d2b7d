"""Trace replay through the engine: PM100 (recorded starts and power), Marconi100 job
tables (queued from submit times) and carbon intensity from a file."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from traces.pm100 import write_pm100_like
from twin.sim.results import run_to_folder

REPO = Path(__file__).resolve().parents[1]
UTC = timezone.utc

SCENARIO = """\
name = "replay"
start = 2025-10-10T00:00:00Z
duration_h = {duration_h}
seed = 3
[facility]
nodes = {nodes}
gpus_per_node = 4
gpu_model = "V100-SXM2-16GB"
host_idle_w = 300.0
host_busy_w = 650.0
[cooling]
model = "paper_eq4"
[weather]
model = "diurnal"
dry_bulb_mean_c = 30.0
dry_bulb_range_k = 0.0
wet_bulb_mean_c = 20.0
wet_bulb_range_k = 0.0
[workload]
{workload}
[grid]
country = "IT"
carbon_source = "constant"
constant_intensity_g_per_kwh = 250.0
constant_carbon_free_fraction = 0.5
[outputs]
overview_png = false
"""


def scenario_file(tmp_path, workload, duration_h=24.0, nodes=980):
    path = tmp_path / "replay.toml"
    path.write_text(SCENARIO.format(workload=workload, duration_h=duration_h, nodes=nodes))
    return path


def test_generated_pm100_day_replays_through_the_cli_and_counts_dropped_rows(tmp_path):
    bad = {"end_before_start": 3, "negative_power": 2, "empty_power_series": 4}
    write_pm100_like(tmp_path / "pm100.parquet", n_jobs=600, start=datetime(2020, 10, 9, tzinfo=UTC), days=1,
                     seed=7, bad_rows=bad)
    # rebase = false: the trace day 2020-10-09 maps exactly onto the scenario's 24 h
    sc = scenario_file(tmp_path, 'source = "pm100"\npath = "pm100.parquet"\ntrace_start = 2020-10-09T00:00:00Z\n'
                                 'rebase = false\nwarmup_h = 0.0')
    r = subprocess.run([sys.executable, "-m", "twin", "run", str(sc), "--out", str(tmp_path / "out"), "--no-progress"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "out" / "replay" / "summary.json").read_text())
    w = s["workload"]
    assert w["source"] == "pm100" and w["scheduler"] == "recorded start times"
    for reason, n in bad.items():  # every injected bad row is dropped and counted by its reason
        assert w["dropped_rows"][reason] == n, reason
    assert w["dropped_rows_total"] == sum(bad.values())
    assert w["jobs_in_table"] == 600 - sum(bad.values())
    assert w["trace"]["offset_s"] == pytest.approx((datetime(2025, 10, 10) - datetime(2020, 10, 9)).total_seconds())
    assert s["energy_balance_rel_error"] <= 1e-9


def _one_job_pm100(path: Path, node_w, cpu_w, mem_w, nodes=2):
    """A one-row PM100 file (schema from the generator, values by hand)."""
    write_pm100_like(path, n_jobs=5, start=datetime(2020, 10, 9, tzinfo=UTC), days=1, seed=1)
    t = pq.read_table(path).slice(0, 1).to_pylist()[0]
    start = datetime(2020, 10, 9, tzinfo=UTC)
    t.update(start_time=start, end_time=start + pd.Timedelta(seconds=20 * len(node_w)),
             submit_time=start - pd.Timedelta(seconds=60), run_time=20 * len(node_w), time_limit=60,
             num_nodes_alloc=nodes, num_nodes_req=nodes, num_gpus_alloc=4 * nodes, num_gpus_req=4 * nodes,
             nodes=list(range(nodes)), node_power_consumption=node_w, cpu_power_consumption=cpu_w,
             mem_power_consumption=mem_w)
    schema = pq.read_schema(path)
    pq.write_table(pa.Table.from_pylist([t], schema=schema), path)


def test_node_power_follows_the_trace(tmp_path):
    # 2 nodes for 180 s (9 samples of 20 s). Node power (sum over both nodes) 2000 W, CPU 400 W,
    # memory 100 W: GPU = 2000 - 400 - 100 - 2 x (2 x 21 + 45) = 1326 W, host = 674 W (PM100.md rule).
    n = 9
    _one_job_pm100(tmp_path / "pm.parquet", [2000] * n, [400] * n, [100] * n)
    raw_sc = scenario_file(tmp_path, 'source = "pm100"\npath = "pm.parquet"\ntrace_start = 2020-10-09T00:00:00Z\n'
                                     'rebase = false\nwarmup_h = 0.0', duration_h=0.05, nodes=2)
    from twin.scenario import load_scenario
    folder = run_to_folder(load_scenario(raw_sc), tmp_path / "out")
    ts = pq.read_table(folder / "timeseries.parquet").to_pandas()
    host = ts["host_power_w"].to_numpy()
    gpu = ts["gpu_power_w"].to_numpy()
    # hosts draw the trace's host power exactly while the job runs
    np.testing.assert_allclose(host[:180], 674.0, rtol=1e-12)
    # GPUs: 1326 W over 8 GPUs = 165.75 W each, reached through the 0.25 s rise lag: after 5 s
    # (20 tau_up) within 1e-6
    np.testing.assert_allclose(gpu[5:180], 1326.0, rtol=1e-6)
    # after the job the 2 nodes are idle: 8 x 56.58 W of GPUs and 2 x 300 W of hosts
    np.testing.assert_allclose(host[181:], 600.0, rtol=1e-12)
    np.testing.assert_allclose(gpu[182:], 8 * 56.58, rtol=1e-6)


def _m100_table(path: Path, rows):
    """rows: (submit offset s, run_time s, nodes, gpus, limit min)."""
    t0 = pd.Timestamp("2022-01-31T18:00:00Z")
    pd.DataFrame({
        "job_id": np.arange(len(rows), dtype=np.int64),
        "submit_time": [t0 + pd.Timedelta(seconds=r[0]) for r in rows],
        "run_time": np.array([r[1] for r in rows], dtype=np.int64),
        "num_nodes_alloc": np.array([r[2] for r in rows], dtype=np.int64),
        "num_gpus_alloc": np.array([r[3] for r in rows], dtype=np.int64),
        "time_limit": np.array([r[4] for r in rows], dtype=np.int64),
        "user_id": np.zeros(len(rows), dtype=np.int32), "job_state": ["COMPLETED"] * len(rows),
        "partition": ["1"] * len(rows),
    }).to_parquet(path, index=False)


def test_m100_job_table_is_queued_with_easy_backfilling(tmp_path):
    # 4 nodes. 0 s: 3 nodes x 600 s; 60 s: 4 nodes x 60 s (must wait until 600 s);
    # 120 s: 1 node x 300 s, limit 5 min (ends by 420 s < 600 s: backfilled at once);
    # 180 s: run time 0 (dropped); 240 s: 8 nodes (more than the facility: dropped).
    _m100_table(tmp_path / "m100.parquet", [(0, 600, 3, 12, 10), (60, 60, 4, 0, 1), (120, 300, 1, 4, 5),
                                            (180, 0, 1, 0, 1), (240, 100, 8, 0, 2)])
    sc = scenario_file(tmp_path, 'source = "m100_jobs"\npath = "m100.parquet"\ntrace_start = 2022-01-31T18:00:00Z\n'
                                 'rebase = false\nwarmup_h = 0.0', duration_h=0.25, nodes=4)
    from twin.scenario import load_scenario
    folder = run_to_folder(load_scenario(sc), tmp_path / "out")
    s = json.loads((folder / "summary.json").read_text())
    assert s["workload"]["dropped_rows"] == {"non_positive_run_time": 1, "more_nodes_than_facility": 1}
    assert s["workload"]["jobs_backfilled"] == 1
    busy = pq.read_table(folder / "timeseries.parquet").to_pandas()["busy_nodes"].to_numpy()
    assert busy[30] == 3 and busy[130] == 4  # job 2 backfilled beside job 0 at 120 s
    assert busy[500] == 3  # job 2 done (420 s); job 1 still waiting for job 0
    assert busy[610] == 4 and busy[680] == 0  # job 1 runs 600-660 s on all 4 nodes


def test_carbon_from_file_and_its_covered_range(tmp_path):
    hours = pd.date_range("2025-10-09T00:00Z", periods=72, freq="h")
    pd.DataFrame({"timestamp": hours, "carbon_intensity_gCO2eq_per_kWh": 100.0,
                  "carbon_free_fraction_production": 0.2, "carbon_free_fraction": 0.9}).to_parquet(
        tmp_path / "ci.parquet", index=False)
    text = SCENARIO.format(workload='source = "synthetic"\noffered_load = 0.5\nwarmup_h = 1.0', duration_h=2.0,
                           nodes=4)
    text = text.replace('carbon_source = "constant"\nconstant_intensity_g_per_kwh = 250.0\n'
                        'constant_carbon_free_fraction = 0.5', 'carbon_source = "file"\ncarbon_file = "ci.parquet"')
    (tmp_path / "ci.toml").write_text(text)
    from twin.scenario import load_scenario
    folder = run_to_folder(load_scenario(tmp_path / "ci.toml"), tmp_path / "out")
    s = json.loads((folder / "summary.json").read_text())
    assert s["co2_kg"] == pytest.approx(s["grid_energy_kwh"] * 0.100, rel=1e-9)  # 100 g/kWh
    assert s["cfe"] == pytest.approx(0.2, rel=1e-12)  # the production-based column, not the other one
    # a scenario outside the file's hours: exit 2, the covered range in the message
    (tmp_path / "late.toml").write_text(text.replace("2025-10-10T00:00:00Z", "2026-10-10T00:00:00Z"))
    r = subprocess.run([sys.executable, "-m", "twin", "run", str(tmp_path / "late.toml"), "--out",
                        str(tmp_path / "out2")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "covers 2025-10-09T00:00Z to 2025-10-12T00:00Z" in r.stderr and "Traceback" not in r.stderr


def test_missing_trace_file_is_a_scenario_error(tmp_path):
    sc = scenario_file(tmp_path, 'source = "pm100"\npath = "nope.parquet"\ntrace_start = 2020-10-09T00:00:00Z')
    r = subprocess.run([sys.executable, "-m", "twin", "validate", str(sc)], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2
    assert "workload.path = 'nope.parquet': no such file" in r.stderr
